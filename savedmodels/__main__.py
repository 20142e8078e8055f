"""`python -m savedmodels --run DIR`: export a training run as a SavedModel."""

from savedmodels.exporter import main

raise SystemExit(main())
