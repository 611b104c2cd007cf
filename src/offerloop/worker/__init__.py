"""Background work entrypoints: which modules register job kinds and consumers (`registry`)."""
