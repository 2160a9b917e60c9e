from iepile.cli import main

main()
