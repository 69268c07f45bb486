"""The project's exception hierarchy.

`UserError` and its children carry a message meant for the person (or the model) who can act on it:
front ends print it as one line, without a traceback. Everything else is a programming error and raises.
"""


class UserError(Exception):
    """An error the user can act on; its message is shown as is."""


class BadInputError(UserError):
    """A request, image or file that cannot be used (corrupt, too large, malformed)."""


class ModelLoadError(UserError):
    """A model that cannot be loaded: unsupported family, missing weights, no hub, too little memory."""


class OutOfMemoryBudget(ModelLoadError):
    """The memory estimate says the model would not fit; raised before anything is loaded."""


class ToolError(UserError):
    """A tool that failed or timed out. The turn loop turns it into an observation, never a crash."""

    def __init__(self, tool: str, reason: str):
        super().__init__(f"tool {tool!r} failed: {reason}")
        self.tool = tool
        self.reason = reason


class BackendError(UserError):
    """A remote model server that refused or failed a request."""
