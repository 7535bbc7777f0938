"""KineMIC fine-tuning inside upstream's TrainLoop (training_loop.py).

May import: mdm.checkpoints, mdm.model, mdm.upstream, core, data, text, training, viz and the
package's utilities; not mdm.sampling.
"""
