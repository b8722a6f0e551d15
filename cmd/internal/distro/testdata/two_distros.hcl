distro "debian" {
  strategy = "disk"
  boot_filesystem = "ext4"
  initrd_generator = "dracut"
  guest_family = "debian"
  ssh_unit = "ssh.service"
  share_transport = "9p"
}

distro "ubuntu" {
  strategy = "disk"
  boot_filesystem = "ext4"
  initrd_generator = "dracut"
  guest_family = "debian"
  ssh_unit = "ssh.service"
  share_transport = "9p"
}
