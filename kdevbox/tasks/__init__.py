"""One @deploy function per capability; each takes its typed settings, never host.data."""
