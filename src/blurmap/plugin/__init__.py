"""Everything that touches napari: the dock widgets, layers, the reader, the sample and the manifest."""

__all__: list[str] = []  # napari finds the plugin through napari.yaml
