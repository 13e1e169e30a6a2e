-- Run once by the mariadb image on first start (docker-compose.yml): same rights as scripts/services.sh gives.
CREATE USER IF NOT EXISTS 'rowsync'@'%' IDENTIFIED BY 'rowsync';
CREATE USER IF NOT EXISTS 'rowsync'@'localhost' IDENTIFIED BY 'rowsync';
GRANT ALL PRIVILEGES ON *.* TO 'rowsync'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'rowsync'@'localhost' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS rowsync CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
FLUSH PRIVILEGES;
