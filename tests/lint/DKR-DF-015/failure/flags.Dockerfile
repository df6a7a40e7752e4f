# expect: 3, 5, 6
FROM debian:12
RUN echo 'deb [trusted=yes] http://repo.example.com stable main' > /etc/apt/sources.list.d/x.list
RUN apt-get update \
 && apt-get install -y --allow-unauthenticated foo
RUN dnf install --nogpgcheck -y bar
