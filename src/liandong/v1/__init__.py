"""Generated from proto/liandong/v1: do not edit."""
