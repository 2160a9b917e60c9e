"""iepile: schema-based information extraction with LLMs, compatible with the IEPile corpus."""

__version__ = "0.1.0"

__all__ = ["__version__", "convert", "Extractor"]

from iepile.convert import convert  # noqa: E402  (the function shadows the module name on purpose: iepile.convert(...))


def __getattr__(name):
    # Lazy: the model stack loads on first use, not on `import iepile`.
    if name == "Extractor":
        from iepile.inference.extract import Extractor

        return Extractor
    raise AttributeError(name)
