"""dSprites: TFDS builder `decomp_dsprites`, procedural renderer and official-file reader."""
