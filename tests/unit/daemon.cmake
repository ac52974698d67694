# Unit tests of the daemon's units (one cmocka binary per source unit).
