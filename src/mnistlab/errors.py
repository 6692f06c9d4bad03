class MnistlabError(Exception):
    """A problem the user can fix; its message is one line that names the problem and the fix.

    Entry points print it without a traceback.
    """
