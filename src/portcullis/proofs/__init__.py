"""Measurements that prove a container's limits hold (`prove`) and what isolation costs (`overhead`)."""
