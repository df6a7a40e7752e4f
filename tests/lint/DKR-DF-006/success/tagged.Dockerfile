FROM debian:12.7
