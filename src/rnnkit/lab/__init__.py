"""The RNN lab: the classic lessons of recurrent networks, run as experiments on the numpy engine.

Why a vanilla RNN cannot carry information over long distances, and what the
LSTM, the GRU and gradient clipping do about it (Bengio, Simard & Frasconi
1994; Hochreiter & Schmidhuber 1997; Pascanu, Mikolov & Bengio 2013); what
reading in order adds over a bag of words; what single units do (Karpathy,
Johnson & Fei-Fei 2015). One module per experiment; `rnnkit lab ...` runs them
(docs/lab*.md explain what they show).

    model      one recurrent layer + a linear head on the last state (real-valued inputs), MSE
    adding     the adding problem: data, training, the table and the curves   (rnnkit lab adding)
    gradients  ||dL/dh_t|| against the distance T - t through BPTT             (rnnkit lab gradients)
    negation   probes where negation and word order decide: bags of words vs RNNs  (rnnkit lab negation)
    cells      one unit's tanh(c) or h over a text: HTML, PNG, correlated units   (rnnkit lab cells)
    report     figures on their own Agg canvas, JSON; written atomically
"""
