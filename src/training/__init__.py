"""The training library behind the thin command lines ``python -m src.train`` and
``python -m src.model_report``:

- :mod:`src.training.validate`: every training option checked once, before data or weights load;
- :mod:`src.training.builders`: the datamodule, LightningModule, loggers and callbacks of a config;
- :mod:`src.training.run`: one training job (:func:`src.training.run.train`);
- :mod:`src.training.drift`: V-Bridge's drift-correction pairs (stage 2's data);
- :mod:`src.training.memory_plan`: parameter counts and the estimated GPU memory, no weights.
"""
