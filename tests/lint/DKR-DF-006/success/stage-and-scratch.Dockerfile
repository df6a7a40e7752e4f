FROM debian:12 AS build
FROM build
FROM scratch
