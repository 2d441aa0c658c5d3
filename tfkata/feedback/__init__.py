"""What a failure means for the learner, in rooms whose arrows point one way:

``facts``      the exception itself: its chain, a test's own failure, the stub of a TODO, the learner's
               deepest frame, the message without TensorFlow's noise (imports none of the others);
``diagnoses``  the one table of known TensorFlow errors -> one line naming cause and fix (uses facts);
``frames``     the short report: that line, the learner's and the test's frames, the message trimmed
               (uses facts, diagnoses);
``curves``     one sentence on a training curve (plain arithmetic, imports nothing);
``classify``   the classifier on top: TODO / waiting / time-out / memory / diagnosed failure, and the
               function the failure is about (uses all of the above); the plugin calls it.
"""
