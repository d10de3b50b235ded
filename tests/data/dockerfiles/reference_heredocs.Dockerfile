# syntax=docker/dockerfile:1
# Examples from the Dockerfile reference, section "Here-Documents".
FROM debian
RUN <<EOT bash
  set -ex
  apt-get update
  apt-get install -y vim
EOT
RUN <<EOT
  mkdir -p foo/bar
EOT
RUN <<EOT
#!/usr/bin/env python
print("hello world")
EOT
RUN <<FILE1 cat > file1 && <<FILE2 cat > file2
I am
first
FILE1
I am
second
FILE2
COPY <<EOF greeting.txt
hello world
EOF
ARG FOO=bar
COPY <<-EOT /script.sh
  echo "hello ${FOO}"
EOT
COPY <<-"EOT" /script.sh
  echo "hello ${FOO}"
EOT
RUN <<-EOF
	echo tab-indented
	EOF
RUN 3<<EOF cat <&3
fd three
EOF
RUN ["<<EOF"]
RUN cat <<'E F' <<"G"
quoted names
E F
$NOT_EXPANDED
G
