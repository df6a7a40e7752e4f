# expect: 3, 4, 5
FROM debian:12
RUN chmod -R 777 /srv
RUN chmod o+w /etc/app.conf
COPY --chmod=666 a /a
