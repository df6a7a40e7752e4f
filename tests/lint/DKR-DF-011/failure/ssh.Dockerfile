# expect: 3
FROM debian:12
EXPOSE 8080 22/tcp
