# expect: 5
FROM debian:12 AS build
USER 1000

FROM alpine:3.20
COPY --from=build /x /x
