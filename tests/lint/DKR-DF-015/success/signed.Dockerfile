FROM debian:12
RUN echo 'deb [signed-by=/usr/share/keyrings/x.gpg] https://repo.example.com stable main' > /etc/apt/sources.list.d/x.list
