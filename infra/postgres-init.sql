-- Airflow's metadata database beside the platform's own.
create database airflow;
