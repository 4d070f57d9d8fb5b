"""Small helpers every package of the project may import: a leaf that imports nothing of the project.

``common.files``        crash-safe file writes (temp file, fsync, rename, fsync of the folder);
``common.hex``          hex text of bytes and back;
``common.strict_json``  JSON as the project reads it (a repeated key or an over-long integer is refused);
``common.plotting``     matplotlib for files (the Agg backend, imported lazily) and a figure saved atomically;
``common.vocabulary``   the market's names: its two sides (``Side``), the roles that sign, the purposes of sealed
                        messages.

They live here, not in ``market``, because ``chain`` imports nothing of the other packages yet needs them too.
"""
