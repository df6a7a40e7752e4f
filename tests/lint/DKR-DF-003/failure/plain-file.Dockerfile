# expect: 3
FROM debian:12
ADD app.conf /etc/app.conf
