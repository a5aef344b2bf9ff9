"""Dataset sources. Each writes data/raw/: clips, manifest.csv and labels.json."""
