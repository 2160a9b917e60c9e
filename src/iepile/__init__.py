"""iepile: schema-based information extraction with LLMs, compatible with the IEPile corpus."""

__version__ = "0.1.0"

__all__ = ["__version__", "convert", "Extractor"]


def __getattr__(name):
    # Lazy: `import iepile` must stay cheap; the heavy parts load on first use.
    if name == "convert":
        from iepile.convert import convert

        return convert
    if name == "Extractor":
        from iepile.extract import Extractor

        return Extractor
    raise AttributeError(name)
