"""`portcullis watch`: judge each container and image as the engine reports it, and say so within a second."""
