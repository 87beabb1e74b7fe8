"""Making a trained model smaller before int8: TFMOT pruning, clustering and QAT, and the comparison.

Owns: the optimize stage (`tfmot`), the variant comparison (`compare`), the tf_keras rebuild
of a Keras 3 model (`tfkeras_rebuild`) and the statistics of int8 kernels (`weight_stats`).

May import: core, model.
"""
