# expect: 3
FROM debian:12
EXPOSE 20-25
