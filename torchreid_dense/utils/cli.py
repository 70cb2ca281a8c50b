"""Command-line entry points: the user's errors as one line, not a traceback."""
import sys

__all__ = ["exit_status"]


def exit_status(main, argv=None, user_errors=()):
    """Run ``main(argv)``; 0 when it returns, 2 after printing ``error: <message>`` for one of ``user_errors``.

    Anything else (a bug, not the user's to fix) keeps its traceback.
    """
    try:
        main(argv)
    except tuple(user_errors) as err:
        # KeyError's str() quotes its message; print the message itself
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0
