# expect: 6
FROM debian:12 AS build
USER 1000

FROM debian:12
USER 0:0
