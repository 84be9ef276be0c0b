"""Parameter files of the bundled example project (pick one with `-p NAME`)."""
