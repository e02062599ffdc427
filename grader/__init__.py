"""tito: the grader of the TinyTorch course (see `tito --help`)."""
