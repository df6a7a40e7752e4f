FROM debian:12
RUN apt-get install -y sudo && echo pseudo
