"""Multi-touch attribution: conversion paths from the touchpoints (or a paths file) and the models that share
their credit among channels (see docs/attribution.md)."""
