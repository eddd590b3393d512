"""Training runs and lazy reads: gitmodel.Run, gitmodel.open, gitmodel.load_tensor."""
