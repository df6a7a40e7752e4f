# expect: 2, 3
FROM debian:12 AS a
FROM alpine:3.20
