from . import request, response

__all__ = ["request", "response"]
