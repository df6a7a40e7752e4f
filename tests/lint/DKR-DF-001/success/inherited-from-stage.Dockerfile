FROM debian:12 AS base
USER 1000

FROM base
COPY app /app
