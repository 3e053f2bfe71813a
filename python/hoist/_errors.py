"""hoist's exceptions: one per status of the C library, each carrying hoist's message
(which names the file, the tensor and the byte offset) and deriving from the builtin
that fits, so `except FileNotFoundError` and `except ValueError` work as they would
with safetensors or transformers."""


class Error(Exception):
    """A failed hoist call. status: the C library's status code (hoist.h)."""

    status = None

    @property
    def message(self):
        return self.args[0] if self.args else ""


class InvalidArgumentError(Error, ValueError):
    """An argument or option is wrong (HOIST_ERR_INVALID)."""


class OutOfMemoryError(Error, MemoryError):
    """Host memory could not be allocated (HOIST_ERR_NOMEM)."""


class FileError(Error, OSError):
    """A file could not be opened, read or written (HOIST_ERR_IO)."""


class NotFoundError(FileError, FileNotFoundError):
    """The path names no file, nor a model in the local Hub cache."""


class FormatError(Error, ValueError):
    """A file breaks the safetensors or index format (HOIST_ERR_FORMAT)."""


class NoDeviceError(Error, RuntimeError):
    """The device asked for does not exist or no driver loads (HOIST_ERR_NO_DEVICE)."""


class DeviceError(Error, RuntimeError):
    """The device or its driver failed (HOIST_ERR_DEVICE)."""


class CancelledError(Error):
    """The progress callback asked to stop (HOIST_ERR_CANCELLED)."""


class NoSpaceError(Error, MemoryError):
    """The tensors do not fit the devices' budgets or memory (HOIST_ERR_NO_SPACE)."""


class _FileErrorFactory:
    """HOIST_ERR_IO raises NotFoundError when the message says the file is missing."""

    def __call__(self, message):
        missing = ("No such file or directory" in message or "no such file or directory"
                   in message or "is not in the Hugging Face Hub cache" in message)
        return (NotFoundError if missing else FileError)(message)


BY_STATUS = {
    1: InvalidArgumentError, 2: OutOfMemoryError, 3: FileError, 4: FormatError,
    5: NoDeviceError, 6: DeviceError, 7: CancelledError, 8: NoSpaceError,
}
