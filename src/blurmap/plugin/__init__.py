"""Everything that touches napari: the dock widgets and the sample data. The core never imports it."""
