"""Tests of the custom transformer: gradients, twin equivalence, autograd graph, export."""
