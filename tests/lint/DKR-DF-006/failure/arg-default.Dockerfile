# expect: 3
ARG BASE=alpine
FROM ${BASE}
