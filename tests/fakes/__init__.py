"""Loopback fakes of outside services for tests (real servers, never in-process patches)."""
