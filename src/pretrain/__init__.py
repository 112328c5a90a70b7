"""The tiny models' pretraining as a library (``python -m src.pretrain_tiny`` is its command line):
:mod:`~src.pretrain.data` (photos, clips, random streams), :mod:`~src.pretrain.families` (what
differs between the tiny CogVideoX and the tiny Wan2.2), :mod:`~src.pretrain.state` (the resumable
state and the optimisation loop), :mod:`~src.pretrain.stages` (vae, bank, transformer),
:mod:`~src.pretrain.measurements` (reconstruction and identity PSNR), :mod:`~src.pretrain.record`
(the weights file and the record), :mod:`~src.pretrain.options` and :mod:`~src.pretrain.run`
(one pretraining from its options)."""
