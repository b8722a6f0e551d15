distro "debian" {
  strategy = "disk"
}

distro "ubuntu" {
  strategy = "disk"
}
