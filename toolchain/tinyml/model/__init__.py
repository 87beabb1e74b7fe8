"""The model: what a `.tflite` is and how it runs on the host, from Keras to verified int8.

Owns: the facts of a flatbuffer and the one dtype-size table (`modelfile`), the op table
(`ops`), the TFLM Python runtime (`tflm`), the TFLite reference (`reference`), int8 <-> float
(`quantization`), the one Keras loader (`keras`), the quantize stage (`quantize`) and the
inspect stage (`inspect`).

May import: core.
"""
