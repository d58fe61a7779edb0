"""Line coverage of the wrapper over boots (`bwemu coverage`)."""
