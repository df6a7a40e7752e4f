FROM debian:12
COPY app.conf /etc/app.conf
