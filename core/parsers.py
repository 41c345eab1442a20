"""The API reads JSON only, and a body it cannot read is a 400, never a server error."""

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DrfJSONParser


class JSONParser(DrfJSONParser):
    """DRF's JSON parser, with a body nested too deeply answered as bad input.

    Python's decoder recurses once per nesting level, so `[[[[…]]]]` thousands deep raises
    RecursionError, which DRF does not catch (it catches ValueError only).
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
