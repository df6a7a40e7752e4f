# expect: 3
FROM alpine:3.20
RUN apk update
